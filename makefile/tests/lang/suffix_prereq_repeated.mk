.SUFFIXES: .a .b
.a.b: dep ; @echo x
.b: dep2 ; @echo y
.SUFFIXES: .b
