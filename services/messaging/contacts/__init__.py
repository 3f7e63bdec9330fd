"""The contact directory: the people of each account, their roles and how to reach them."""
