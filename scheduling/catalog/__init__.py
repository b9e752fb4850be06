"""The drug catalog: products and their rate titration, dose, infusion time, and the usual
regimens per diagnosis."""
