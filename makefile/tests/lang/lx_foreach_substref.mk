# foreach binds the first word of its name; substitution references with escaped %
$(info 1 $(foreach a b,1 2,[$(a)][$(b)][$(a b)]))
$(info 2 $(foreach a ,1 2,[$(a)][$(a )]))
x = a b
$(info 3 $(foreach $x,1 2,[$(a)][$($x)]))
X = a% b% c
$(info 4 [$(X:\%=<>)] [$(X:%=<%>)] [$(X:\\%=q)])
Y = a.c b.c
$(info 5 [$(Y:.c=\%)] [$(Y:.c=%.o)] [$(Y:%.c=%\%)] [$(Y:=)])
