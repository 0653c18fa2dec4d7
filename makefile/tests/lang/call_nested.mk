f = <$(1)|$(2)|$(3)>
g = $(call f,$(1))
$(info $(call f,a,b,c) $(call g,x) $(call f,a,b))
map = $(foreach a,$(2),$(call $(1),$(a)))
up = $(subst a,A,$(1))
$(info $(call map,up,abc bad))
$(info [$(call undefined_fn,a)] [$(call)])
