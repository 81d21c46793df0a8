"""Test harness: the program under Pulumi mocks backed by moto, bundled Lambdas, IAM checks."""
