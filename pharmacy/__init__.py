"""The pharmacy: drug stock by lot at each center, and which patient received which lot."""
