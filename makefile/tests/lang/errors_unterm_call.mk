$(info $(subst a,b,c)
