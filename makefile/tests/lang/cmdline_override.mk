# args: lr=3e-5 other=1 app=c
lr ?= 1e-4
other := 2
override forced := yes
app += more
$(info lr=$(lr) other=$(other) forced=$(forced) app=$(app) $(origin lr) $(origin forced))
override other := 3
$(info other=$(other) $(origin other))
