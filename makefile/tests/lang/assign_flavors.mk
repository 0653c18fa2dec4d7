A = $(B)
B = b1
C := $(B)
B = b2
D ::= $(B) $$x
E ?= e1
E ?= e2
F = f1
F += f2
G := g1
G += $(B)
H =
H += h
I != echo one; echo two
J = $$(B)
K := x \
   y  \
   z
$(info A=[$(A)] C=[$(C)] D=[$(D)] E=[$(E)] F=[$(F)] G=[$(G)] H=[$(H)] I=[$(I)] J=[$(J)] K=[$(K)])
$(info $(flavor A) $(flavor C) $(flavor D) $(flavor F) $(flavor G) $(flavor I) $(flavor nope))
$(info $(origin A) $(origin CC) $(origin PATH) $(origin nope) $(origin MAKE_VERSION))
X = a # comment
Y = b\#c
$(info [$(X)][$(Y)])
