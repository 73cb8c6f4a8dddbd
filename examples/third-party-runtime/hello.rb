puts "hello from ruby #{RUBY_VERSION}"
