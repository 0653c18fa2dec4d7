INCVAR := from inc
$(info in inc: $(lastword $(MAKEFILE_LIST)))
