X = $(eval $(X))
$(X)
