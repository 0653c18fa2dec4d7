$(info $(word 0,a))
