# make lists $(.VARIABLES) in its hash-table order (MAKECMDGOALS left out: the harness gives make a goal)
$(info $(filter-out MAKECMDGOALS,$(.VARIABLES)))
X = user
define Y
endef
$(info $(filter-out MAKECMDGOALS,$(.VARIABLES)))
