define X
define Y
endef
$(eval $(X))
.SECONDEXPANSION:
a: $$$$(foo $$(
