SRC = a.c b.c  c.h d.c
$(info $(SRC:.c=.o))
$(info $(SRC:%.c=obj/%.o))
$(info ${SRC:c=x})
x_y = computed
n = x
$(info $($(n)_y) $($(n)_$(subst a,y,a)))
E =
$(info [$(E:a=b)])
