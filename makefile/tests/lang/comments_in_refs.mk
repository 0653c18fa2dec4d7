W := $(words a b # c d)
H := \#
V := $(subst x,$(H),axbxc) # real comment
X := ${filter %\#,a\# b} # braces too
$(info [$(W)] [$(V)] [$(X)])
ifeq ($(words # x),2) # comment
$(info cond-ok)
endif
