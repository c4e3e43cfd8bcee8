"""What tests share: the topic factory (`topics`), the runner of the real CLI (`cli`), the
deadline poll (`polling`)."""
