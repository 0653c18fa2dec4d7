A = 1
this is not a rule
