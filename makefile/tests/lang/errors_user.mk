$(warning careful)
$(error stop here $(words a b))
