"""What is checked: layers and stacks built from specs, loaded models and their stages."""
