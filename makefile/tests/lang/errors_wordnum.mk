$(info $(word x,a))
