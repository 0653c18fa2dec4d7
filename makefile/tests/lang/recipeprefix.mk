.RECIPEPREFIX = >
all:
>@echo hi
$(info [$(.RECIPEPREFIX)])
.RECIPEPREFIX :=
$(info [$(.RECIPEPREFIX)])
