define X
a = 1

b c
endef

$(eval $(X))
all: ; @:
