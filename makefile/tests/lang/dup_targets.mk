a a b: ; @:
$(info ok)
