"""What goes to the model: FIM ids, the text form, Instruct chat prompts, and the tokenizers that make them."""
