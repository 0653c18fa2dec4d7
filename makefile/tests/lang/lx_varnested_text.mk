# nested/computed variable names
x = y
y = z
z = u
a_1 = one
n = 1
$(info 1 [$($(x))] [$($($(x)))] [$(a_$(n))] [${a_${n}}])
foo = $(bar)
bar = $(baz)
baz = hello
$(info 2 [$(foo)] [$(value foo)] [$(flavor foo)])
s := $(foo) world
$(info 3 [$(s)] [$(flavor s)])
var$(n) := set
$(info 4 [$(var1)] [$(origin var1)])
sp = a   b
$(info 5 [$(sp)] [$(strip $(sp))] [$(words $(sp))])
e :=
space := $(e) $(e)
$(info 6 [$(space)] [$(subst $(space),-,a b c)])
comma := ,
$(info 7 [$(subst $(comma),;,a,b,c)])
$(info 8 [$(x:y=q)] [$(x:%=pre%post)] [$(z:u=)])
l = a.c b.c c.h
$(info 9 [$(l:.c=.o)] [$(l:%.c=obj/%.o)] [$(patsubst %.c,%.o,$(l))])
$(info 10 [$($(x):=.q)] [$(undefined_thing)] [$(origin undefined_thing)])
$(info 11 [$(words )] [$(word 2,a b c)] [$(wordlist 2,3,a b c d)] [$(wordlist 3,2,a b c)] [$(firstword )] [$(lastword a b c)])
$(info 12 [$(sort c b a b)] [$(sort )] [$(filter %.c %.h,$(l))] [$(filter-out %.c,$(l))])
$(info 13 [$(findstring a,cat)] [$(findstring x,cat)] [$(join a b c,1 2)] [$(join a,1 2 3)])
$(info 14 [$(dir a/b c /d/e/ f/)] [$(notdir a/b c /d/e/)] [$(suffix a.b c.d.e f g.)] [$(basename a.b c.d.e f /x.y/z)])
$(info 15 [$(addsuffix .x,a b)] [$(addprefix p/,a b)] [$(addsuffix .x,)])
$(info 16 [$(if ,a,b)] [$(if x,a,b)] [$(if $(space),a,b)] [$(or ,,c,d)] [$(and a,b,c)] [$(and a,,c)] [$(or)])
