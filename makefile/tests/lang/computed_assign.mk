pre = my
$(pre)_var = computed
$(pre)_$(pre) := double
$(info [$(my_var)] [$(my_my)])
x := a b
$(info [$($(firstword $(x)))])
a = A!
$(info [$($(firstword $(x)))])
foo = $(bar
