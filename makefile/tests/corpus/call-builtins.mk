X := $(call call)$(call file)$(call if)$(call foreach,a)$(call and)
