X = a,b
$(info ${subst a,z,aaa} $(patsubst %,[%],${X}))
$(info $(if $(filter a,a),$(subst ( , ,x(y),no))
$(info $(words $(wildcard *.nonexist)) $(sort b a c a))
$(info [$(filter %.c %.h,a.c b.h c.o)] [$(filter a%b,ab axb a)] [$(filter \%x,%x y)])
