f = $(call f,$(1)x)
$(info $(call f,a))
