"""Vitrine catalog: shops and products, product image vectors, and the matcher that turns
objects seen in videos into shoppable tags."""
