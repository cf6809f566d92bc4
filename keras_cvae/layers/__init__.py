"""The SVG networks' building blocks: the VGG encoder and decoder, the LSTM predictors."""
