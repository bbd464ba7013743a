"""scikit-learn fits a classifier and a regression on tiny data and predicts correctly."""

import numpy as np
import sklearn
from sklearn.linear_model import LinearRegression, LogisticRegression

print("scikit-learn", sklearn.__version__)
x = np.array([[0.0], [1.0], [2.0], [3.0], [10.0], [11.0], [12.0], [13.0]])
labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
classifier = LogisticRegression().fit(x, labels)
assert classifier.predict([[1.5], [11.5]]).tolist() == [0, 1]
regression = LinearRegression().fit(x, 3 * x.ravel() + 2)
assert np.allclose([regression.coef_[0], regression.intercept_], [3.0, 2.0])
print("scikit-learn ok")
