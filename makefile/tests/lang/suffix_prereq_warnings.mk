.SUFFIXES: .c .o
.c.o: dep ; @echo x
dep: ; @echo dep
