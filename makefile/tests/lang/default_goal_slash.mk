.dir/x: ; @:
y: ; @:
$(info [$(.DEFAULT_GOAL)])
