# args: CL=cmd CL2=cmd2 OV=cmdov
# override, origin, flavor, export, define
CL = file
override CL2 = file2
override OV += more
$(info 1 [$(CL)] [$(CL2)] [$(OV)] $(origin CL) $(origin CL2) $(origin OV))
define multi
line one
line two
endef
$(info 2 [$(multi)] $(flavor multi) $(origin multi))
define imm :=
$(CL) x
endef
$(info 3 [$(imm)] $(flavor imm))
define app +=
more
endef
$(info 4 [$(app)] $(flavor app))
app += again
$(info 5 [$(app)])
define cond ?=
c1
endef
define cond ?=
c2
endef
$(info 6 [$(cond)])
override define od
od-val
endef
$(info 7 [$(od)] $(origin od))
define empty
endef
$(info 8 [$(empty)] $(origin empty) $(flavor empty))
export EX = 1
unexport UN = 2
$(info 9 $(origin EX) $(origin UN) $(origin PATH) $(origin MAKE) $(origin CURDIR) $(origin .VARIABLES) $(origin @) $(origin MAKEFLAGS))
undefine CL
$(info 10 [$(CL)] $(origin CL))
undefine EX
$(info 11 [$(EX)] $(origin EX))
override undefine CL2
$(info 12 [$(CL2)] $(origin CL2))
x ?= 1
x ?= 2
$(info 13 $(x) $(flavor x))
y != echo hi; echo there
$(info 14 [$(y)] $(flavor y))
z ::= $(x)
$(info 15 [$(z)] $(flavor z))
define nested
define inner
x
endef
endef
$(info 16 [$(nested)])
