define MULTI
line one
  line two $(X)
endef
X = x!
$(info [$(MULTI)])
define SIMPLE :=
s $(X)
endef
X = y!
$(info [$(SIMPLE)] $(flavor SIMPLE) $(flavor MULTI))
define APP +=
more
endef
APP = base
define APP +=
added
endef
$(info [$(APP)])
define OUTER
define INNER
inner
endef
endef
$(eval $(OUTER))
$(info [$(INNER)])
override define OV
ov
endef
$(info [$(OV)] $(origin OV))
undefine OV
$(info [$(OV)] $(origin OV))
