define TMPL
$(1)_obj := $(1).o
$(1): ; @echo building $(1)
endef
$(foreach p,alpha beta,$(eval $(call TMPL,$(p))))
$(info $(alpha_obj) $(beta_obj) $(.DEFAULT_GOAL))
$(eval X = 1)$(eval Y = $(X)2)
$(info $(X) $(Y))
$(eval ifeq (a,a)
$(eval Z = in-cond)
$(eval endif)
