# bench: codec fragment
