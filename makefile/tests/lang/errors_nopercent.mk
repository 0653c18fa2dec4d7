a b: x: y
