reverse = $(2) $(1)
$(info [$(call reverse,a,b)])
nest = $(call reverse,$(1),x)-$(2)
$(info [$(call nest,p,q)])
$(info [$(call subst,a,b,banana)])
V = $(X) raw
$(info [$(value V)])
define RULE
$(1)_var := $(1) value
endef
$(eval $(call RULE,foo))
$(info [$(foo_var)])
$(foreach t,one two,$(eval $(t)_x = $(t)!))
$(info [$(one_x)] [$(two_x)])
