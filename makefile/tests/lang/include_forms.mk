include inc/one.mk
-include missing-optional.mk
sinclude also-missing.mk inc/two.mk
include $(wildcard inc/t*.mk)
$(info $(INCVAR) $(TWO) [$(MAKEFILE_LIST)])
