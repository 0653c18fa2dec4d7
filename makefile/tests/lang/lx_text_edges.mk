a = .c
b = .o
foo = x.c y.c
$(info 1 [$(foo:$(a)=$(b))] [$(foo:.c=$(b))] [$(foo:%$(a)=%$(b))])
$(info 2 [$(patsubst \%%,<%>,%a %b c)] [$(patsubst %\%,<%>,a% b%)] [$(patsubst a\\%,<%>,a\x a\\y)])
$(info 3 [$(filter \%a,%a a)] [$(filter-out %,a b)] [$(filter a%,ab ba a)])
$(info 4 [$(strip  	a  	 b	)] [$(sort b a b a)] [$(if  ,a,b)] [$(if , ,b)])
tab := $(e)	$(e)
$(info 5 [$(words a$(tab)b)] [$(subst a,,)] [$(subst ,x,abc)] [$(subst a,b,)])
nl := $(e)
define NL


endef
$(info 6 [$(words a$(NL)b)] [$(strip a$(NL)b)] [$(firstword $(NL) x)])
$(info 7 [$(dir )] [$(notdir )] [$(suffix .x)] [$(basename .x)] [$(dir ./a)] [$(notdir a/)] [$(basename a/b.c/d)] [$(suffix a/b.c/d)])
$(info 8 [$(join ,)] [$(join a b,)] [$(addprefix ,a)] [$(word 1,)] [$(wordlist 1,1,)])
$(info 9 [$(findstring ,abc)] [$(findstring abc,abc)] [$(filter ,a)] [$(sort 10 9 1 a A _)])
$(info 10 [$(or $(e),$(e))] [$(and $(e))] [$(and x,$(space))] [$(or  , y)])
$(info 11 [$(notdir $(abspath a/../../b))] [$(notdir $(abspath ./))] [$(abspath )] [$(realpath )] [$(notdir $(abspath a b))])
$(info 12 [$(if a,$(info lazy-then),$(info lazy-else))])
$(info 13 [$(and ,$(info not-evaluated))] [$(or x,$(info not-evaluated))])
x = $(info side)v
$(info 14 [$(x:v=w)])
$(info 15 [$(subst  , ,a b)] [$(patsubst %,%, a  b )] [$(patsubst a,b,a a a)])
$(info 16 [${foo:.c=.d}] [$(foo:.c=)] [$(foo:=.x)] [$(foo: =_)])
