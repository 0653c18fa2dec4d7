TWO := 2
