$(info $(MAKE_VERSION) [$(.FEATURES)])
$(info $(filter MAKE_VERSION CURDIR SHELL,$(.VARIABLES)))
$(info $(SHELL) [$(.SHELLFLAGS)] $(MAKELEVEL) $(origin MAKELEVEL) $(origin CURDIR) $(origin MAKEFILE_LIST))
$(info $(origin .DEFAULT_GOAL) $(origin .RECIPEPREFIX) $(origin MAKE) $(flavor MAKE) $(origin @D))
$(info [$(shell echo a; echo b)] $(.SHELLSTATUS))
$(info [$(shell exit 3)] $(.SHELLSTATUS))
X != printf 'x\ny\n\n'
$(info [$(X)])
