import nodemailer from 'nodemailer';
import type { Config } from '../config/schema.ts';

// Outgoing e-mail over SMTP (nodemailer), configured by `mail` (docs/configuration.md). Plain-text
// messages only; the caller decides what goes in them (never a secret but the link they carry).

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
}

export interface MailSender {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export function createMailSender(mail: NonNullable<Config['mail']>): MailSender {
  const { smtp } = mail;
  const transport = smtp.url
    ? nodemailer.createTransport(smtp.url)
    : nodemailer.createTransport({ host: smtp.host, ...(smtp.port ? { port: smtp.port } : {}), secure: smtp.secure, ...(smtp.auth ? { auth: { user: smtp.auth.user, pass: smtp.auth.pass } } : {}) });
  return {
    async send(message) {
      await transport.sendMail({ from: mail.from, to: message.to, subject: message.subject, text: message.text });
    },
    close() {
      transport.close();
    },
  };
}
