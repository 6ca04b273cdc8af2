module bluegreen/app

go 1.19
