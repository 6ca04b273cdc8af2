module bluegreen/loadgen

go 1.19
