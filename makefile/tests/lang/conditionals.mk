A = 1
ifeq ($(A),1)
$(info eq1)
else
$(info wrong)
endif
ifeq "$(A)" "1"
$(info eq2)
endif
ifneq '$(A)' "2"
$(info neq)
endif
ifdef A
$(info defA)
endif
ifndef B
$(info undefB)
endif
E =
ifdef E
$(info wrong)
else ifeq ($(A),2)
$(info wrong)
else ifeq ($(A),1)
$(info elseif)
else
$(info wrong)
endif
ifeq (,$(B))
  ifeq ($(A),1)
  $(info nested)
  endif
endif
ifeq ($(A) , 1)
$(info wrong)
endif
ifeq ($(strip $(A) ),1)
$(info stripped)
endif
