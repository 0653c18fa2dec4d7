export A = 1
export B
unexport C
export D E := 2
$(info [$(origin B)] [$(flavor B)] [$(B)] [$(D E)] [$(origin C)])
export
unexport
override export F = f
$(info [$(F)] $(origin F))
