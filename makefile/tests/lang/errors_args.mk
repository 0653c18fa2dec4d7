$(info $(word 1))
