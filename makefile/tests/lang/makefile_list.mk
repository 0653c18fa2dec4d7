include inc/one.mk
MAKEFILE_LIST += extra
include inc/two.mk
$(info [$(MAKEFILE_LIST)] $(origin MAKEFILE_LIST) $(flavor MAKEFILE_LIST))
ifdef MAKEFILE_LIST
$(info def)
endif
