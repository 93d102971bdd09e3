"""lenet-mnist: the experiments of a CS 7150 midterm, measured reproducibly."""
