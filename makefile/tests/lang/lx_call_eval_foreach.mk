# call, eval, foreach, value
rev = $(2) $(1)
$(info 1 [$(call rev,a,b)] [$(call rev,a)] [$(call rev)] [$(call undefined,a)])
map = $(foreach a,$(2),$(call $(1),$(a)))
up = <$(1)>
$(info 2 [$(call map,up,x y z)])
deep = $(if $(1),$(call deep,$(wordlist 2,99,$(1))) $(firstword $(1)))
$(info 3 [$(call deep,a b c d)])
$(info 4 [$(call rev,a,b,c)] [$(0)] [$(1)])
argcount = $(words $(1) $(2) $(3))
$(info 5 [$(call argcount, a , b ,c)])
define mkrule
$(1)_var := $(2)
endef
$(foreach p,one two,$(eval $(call mkrule,$(p),val_$(p))))
$(info 6 [$(one_var)] [$(two_var)])
$(eval A = 1)$(eval B = $$(A)2)
$(info 7 [$(B)] [$(value B)])
$(info 8 [$(foreach v,,x)] [$(foreach v,a b,)] [$(foreach v,a  b,[$(v)])])
v = outer
$(info 9 [$(foreach v,in,$(v))] [$(v)] $(origin v))
$(info 10 [$(value rev)] [$(value undefined)] [$(value $(empty)rev)])
f = $(1)$(1)
$(info 11 [$(call f,$(call f,x))])
$(info 12 [$(call ,x)] [$(call  rev , p , q )])
$(info 13 [$(call info,hello)])
$(info 14 [$(call subst,a,b,aaa)] [$(call patsubst,%.c,%.o,x.c)])
